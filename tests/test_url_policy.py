"""One URL policy for every request of the project (io/url_policy.py).

Real servers on 127.0.0.1 started here, real builds: a redirect's second
hop to a refused host is refused for data.json images (the fetcher), bucket
objects (a course builder), catalog source URLs (a catalog build) and
`sign-datasets new --source URL`; the catalog scope; and the address a
connection actually reached.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from sign_datasets.io import downloads
from sign_datasets.io.downloads import SourceDownloadError
from sign_datasets.io.fetch_settings import FetchSettings
from sign_datasets.io.fetcher import REFUSED, Fetcher
from sign_datasets.io.url_policy import CATALOG, DATA, Refused, RefusedAddress, UrlPolicy

from loopback_http import FAST, build, catalog_entry, register, shapes_csv

pytest_plugins = ("loopback_http",)


# --- a redirect's second hop to a refused host, for each kind of request ----------------

def test_image_redirect_to_a_refused_host_is_refused(origin, other, tmp_path):
    other.routes["/img.png"] = b"not for us"
    origin.redirect("/a.png", "/b.png")
    origin.redirect("/b.png", other.base_url + "img.png")
    with Fetcher(tmp_path / "cache", FetchSettings(**FAST), source=origin.base_url) as fetch:
        result = fetch.fetch(origin.base_url + "a.png")
    assert result.reason == REFUSED
    assert f"redirect to {other.base_url}img.png" in result.detail
    assert "loopback address 127.0.0.1" in result.detail and "SIGN_DATASETS_ALLOWED_HOSTS" in result.detail
    assert origin.paths == ["/a.png", "/b.png"] and other.paths == []


def test_bucket_object_redirect_to_a_refused_host_is_refused(origin, other, env, tmp_path):
    import sign_datasets  # noqa: F401 - registers the course builders

    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    other.routes["/databasesLoadData.zip"] = b"PK"
    origin.redirect("/databasesLoadData.zip", "/moved.zip")
    origin.redirect("/moved.zip", other.base_url + "databasesLoadData.zip")
    with pytest.raises(SourceDownloadError) as refused:
        build("sign_mnist_csv/original", tmp_path / "data", tmp_path / "downloads")
    message = str(refused.value)
    assert message.startswith(f"{origin.base_url}databasesLoadData.zip: not downloaded (refused_url: "
                              f"redirect to {other.base_url}databasesLoadData.zip: loopback address")
    assert "SIGN_DATASETS_ALLOWED_HOSTS" in message
    assert origin.paths == ["/databasesLoadData.zip", "/moved.zip"] and other.paths == []


def test_catalog_source_redirect_to_a_refused_host_is_refused(origin, other, env, tmp_path):
    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    other.routes["/shapes.csv"] = shapes_csv()
    origin.redirect("/shapes.csv", "/moved.csv")
    origin.redirect("/moved.csv", other.base_url + "shapes.csv")
    catalog = register(tmp_path, catalog_entry("team_redirected", origin.base_url + "shapes.csv"))
    with pytest.raises(SourceDownloadError) as refused:
        build("team_redirected", tmp_path / "data", tmp_path / "downloads")
    message = str(refused.value)
    assert message.startswith(f"{catalog}: entry 'team_redirected': field 'sources[0].location': "
                              f"{origin.base_url}shapes.csv: not downloaded (refused_url: "
                              f"redirect to {other.base_url}shapes.csv: loopback address")
    assert origin.paths == ["/shapes.csv", "/moved.csv"] and other.paths == []
    assert not [p for p in (tmp_path / "downloads").rglob("*") if p.is_file()]


def test_new_source_redirect_to_a_refused_host_is_refused(origin, other, env, tmp_path, capsys):
    from sign_datasets.catalog import proposal

    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    other.routes["/shapes.csv"] = shapes_csv()
    origin.routes["/direct.csv"] = shapes_csv()
    origin.redirect("/shapes.csv", "/moved.csv")
    origin.redirect("/moved.csv", other.base_url + "shapes.csv")
    with pytest.raises(proposal.ProposalError) as refused:
        proposal.propose("team_new_redirect", "csv_pixels", origin.base_url + "shapes.csv",
                            tmp_path / "team.toml")
    assert f"redirect to {other.base_url}shapes.csv: loopback address" in str(refused.value)
    assert other.paths == []
    # Without the refused hop the same command downloads and proposes.
    text = proposal.propose("team_new_direct", "csv_pixels", origin.base_url + "direct.csv",
                               tmp_path / "team.toml")
    assert hashlib.sha256(shapes_csv()).hexdigest() in text and "size = [8, 8]" in text


def test_new_fetches_the_first_image_of_a_json_file_only_where_builds_may(origin, other, env,
                                                                         tmp_path):
    from sign_datasets.catalog import proposal

    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    other.routes["/0.png"] = b"not for us"
    listing = tmp_path / "urls.jsonl"
    listing.write_text(f'{{"content": "{other.base_url}0.png", "label": "cat"}}\n')
    text = proposal.propose("team_new_json", "json_urls", str(listing), tmp_path / "team.toml")
    assert "the first image could not be fetched (SourceDownloadError)" in text
    assert other.paths == []


# --- the catalog scope -------------------------------------------------------------------

def test_a_catalog_may_not_name_a_loopback_server_unless_allowed(origin, env, tmp_path):
    origin.routes["/shapes.csv"] = shapes_csv()
    register(tmp_path, catalog_entry("team_loopback", origin.base_url + "shapes.csv"))
    with pytest.raises(SourceDownloadError) as refused:
        build("team_loopback", tmp_path / "data", tmp_path / "downloads")
    assert f"loopback address 127.0.0.1 port {origin.port} is not the source" in str(refused.value)
    assert origin.paths == []
    env.setenv("SIGN_DATASETS_ALLOWED_HOSTS", f"127.0.0.1:{origin.port}")
    builder = build("team_loopback", tmp_path / "data", tmp_path / "downloads")
    assert builder.info.splits["train"].num_examples == 4


@pytest.mark.parametrize("url, why", [
    ("http://10.1.2.3/x.csv", "private address"),
    ("http://192.168.0.10/x.csv", "private address"),
    ("http://172.16.5.4/x.csv", "private address"),
    ("http://[fd12:3456::1]/x.csv", "private address"),
    ("http://127.0.0.1/x.csv", "loopback address"),
    ("http://[::1]/x.csv", "loopback address"),
    ("http://localhost/x.csv", "loopback address"),
    ("http://169.254.169.254/latest/", "cloud metadata endpoint"),
    ("http://metadata.google.internal/x", "cloud metadata endpoint"),
    ("http://169.254.3.4/x.csv", "link-local address"),
    ("http://[fe80::1]/x.csv", "link-local address"),
    ("http://0.0.0.0/x.csv", "non-routable address"),
    ("http://224.0.0.1/x.csv", "non-routable address"),
    ("http://0x0a.0.0.1/x.csv", "private address"),       # 10.0.0.1 in another spelling
    # IPv6 addresses that carry an IPv4 one, which NAT64, 6to4 or the kernel deliver to it.
    ("http://[::a9fe:a9fe]/x.csv", "cloud metadata endpoint"),          # IPv4-compatible
    ("http://[64:ff9b::a9fe:a9fe]/x.csv", "cloud metadata endpoint"),   # NAT64
    ("http://[2002:a9fe:a9fe::1]/x.csv", "cloud metadata endpoint"),    # 6to4
    ("http://[::7f00:1]/x.csv", "loopback address"),
    ("http://[::ffff:7f00:1]/x.csv", "loopback address"),               # IPv4-mapped
    ("http://user:secret@example.org/x.csv", "credentials"),
    ("ftp://example.org/x.csv", "scheme 'ftp'"),
    ("gs://someone-elses-bucket/x.zip", "add gs://someone-elses-bucket to SIGN_DATASETS_ALLOWED_HOSTS"),
    ("https://example.org/" + "a" * 5000, "longer than"),
    ("https://example.org/a\x01b", "control characters"),
])
def test_catalog_scope_refuses(url, why):
    with pytest.raises(Refused) as refused:
        UrlPolicy("https://storage.googleapis.com/platzi-tf2/", scope=CATALOG).check(url)
    assert why in str(refused.value)


def test_catalog_scope_allows_public_hosts_and_what_the_user_allows():
    policy = UrlPolicy("http://10.0.0.5:8000/", ["192.168.1.7", "gs://team-bucket"], scope=CATALOG)
    for url in ("https://example.org/x.csv", "http://93.184.216.34/x.csv",
                "http://10.0.0.5:8000/x.csv",         # the source's origin
                "http://192.168.1.7:9999/x.csv",      # an allowed host, any port
                "gs://team-bucket/pets.zip"):
        assert policy.check(url) is None, url
    with pytest.raises(Refused, match="gs://other-bucket"):
        policy.check("gs://other-bucket/pets.zip")
    # The data scope keeps to the source and the allowed hosts.
    with pytest.raises(Refused, match="add it to SIGN_DATASETS_ALLOWED_HOSTS"):
        UrlPolicy("http://10.0.0.5:8000/", scope=DATA).check("https://example.org/x.png")
    with pytest.raises(Refused, match="scheme 'gs'"):
        UrlPolicy("http://10.0.0.5:8000/", ["gs://team-bucket"], scope=DATA).check(
            "gs://team-bucket/pets.zip")


def test_gs_sources_are_refused_unless_the_bucket_is_allowed(env, tmp_path):
    catalog = register(tmp_path, catalog_entry("team_gs", "gs://team-bucket/shapes.csv"))
    with pytest.raises(SourceDownloadError) as refused:
        build("team_gs", tmp_path / "data", tmp_path / "downloads")
    message = str(refused.value)
    assert message.startswith(f"{catalog}: entry 'team_gs': field 'sources[0].location': "
                              "gs://team-bucket/shapes.csv: refused: gs://team-bucket is read with "
                              "this machine's cloud credentials")
    assert "add gs://team-bucket to SIGN_DATASETS_ALLOWED_HOSTS" in message
    env.setenv("SIGN_DATASETS_ALLOWED_HOSTS", "gs://other-bucket")
    with pytest.raises(SourceDownloadError, match="add gs://team-bucket to"):
        downloads.download_source("gs://team-bucket/shapes.csv", tmp_path / "downloads")


def test_credentials_in_a_url_are_refused_and_not_repeated(origin, env, tmp_path):
    env.setenv("SIGN_DATASETS_SOURCE", origin.base_url)
    origin.routes["/x.csv"] = shapes_csv()
    url = f"http://someone:hunter2@127.0.0.1:{origin.port}/x.csv"
    with pytest.raises(SourceDownloadError) as refused:
        downloads.download_source(url, tmp_path / "downloads")
    assert "credentials" in str(refused.value) and "hunter2" not in str(refused.value)
    # Nor in a redirect: the hop is refused before any request.
    origin.redirect("/to-creds", f"http://someone:hunter2@127.0.0.1:{origin.port}/x.csv")
    with Fetcher(tmp_path / "cache", FetchSettings(**FAST), source=origin.base_url) as fetch:
        result = fetch.fetch(origin.base_url + "to-creds")
    assert result.reason == REFUSED and "credentials" in result.detail
    assert "hunter2" not in result.detail
    assert origin.paths == ["/to-creds"]


def test_https_to_http_redirect_is_refused(tmp_path):
    with Fetcher(tmp_path / "cache", FetchSettings(**FAST), source="https://example.org/") as fetch:
        refusal = fetch._redirect_refusal("https://example.org/a", "http://example.org/b")
    assert "redirect from https down to http: http://example.org/b" in refusal


# --- the address actually connected to -------------------------------------------------

def _name_resolving_to_loopback() -> str | None:
    """A name of /etc/hosts (not spelled 'localhost') that resolves to loopback."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            if "localhost" in name.lower():
                continue
            try:
                found = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
            except OSError:
                continue
            if found and found <= {"127.0.0.1", "::1"} | {f"127.0.{i}.1" for i in range(2)}:
                return name
    return None


def test_a_name_resolving_to_loopback_is_refused_at_connect_time(origin, env, tmp_path):
    name = _name_resolving_to_loopback()
    if name is None:
        pytest.skip("no name in /etc/hosts resolves to loopback here")
    origin.routes["/shapes.csv"] = shapes_csv()
    url = f"http://{name}:{origin.port}/shapes.csv"
    # The URL's text names no special address: only the socket shows it.
    assert UrlPolicy("https://storage.googleapis.com/platzi-tf2/", scope=CATALOG).check(url) is None
    with pytest.raises(SourceDownloadError) as refused:
        downloads.download_source(url, tmp_path / "downloads")
    message = str(refused.value)
    assert f"{name} port {origin.port} resolved to loopback address" in message
    assert "refused at connect time" in message and "SIGN_DATASETS_ALLOWED_HOSTS" in message
    assert origin.paths == []
    # The user may allow the name; then it is fetched.
    env.setenv("SIGN_DATASETS_ALLOWED_HOSTS", name)
    assert downloads.download_source(url, tmp_path / "downloads").read_bytes() == shapes_csv()
    assert origin.paths == ["/shapes.csv"]


def test_a_redirect_to_a_name_resolving_to_loopback_is_refused_for_images(origin, other, tmp_path):
    name = _name_resolving_to_loopback()
    if name is None:
        pytest.skip("no name in /etc/hosts resolves to loopback here")
    other.routes["/img.png"] = b"x"
    origin.redirect("/a.png", f"http://{name}:{other.port}/img.png")
    settings = FetchSettings(**FAST, allowed_hosts=(name,))
    # The data scope trusts the allowed name, even on loopback...
    with Fetcher(tmp_path / "cache", settings, source=origin.base_url) as fetch:
        assert fetch.fetch(origin.base_url + "a.png").read_bytes() == b"x"
    # ...but a peer check refuses a cloud-metadata address reached through it.
    policy = UrlPolicy(origin.base_url, [name])
    with pytest.raises(RefusedAddress, match="cloud metadata endpoint 169.254.169.254"):
        policy.check_peer("http", name, 80, ("169.254.169.254", 80))
    policy.check_peer("http", name, 80, ("127.0.0.1", 80))
