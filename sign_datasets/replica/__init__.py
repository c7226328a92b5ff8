"""Offline replica of the course bucket: a deterministic generator of every
object in its real layout, with synthetic learnable pictures, and a loopback
HTTP server that plays it (with latency and scripted faults) for tests."""

from sign_datasets.replica.bucket import (
    ALL_OBJECTS,
    CIFAR100_LABELS,
    FIRST_ZERO_ROW,
    FWEFEW_ROWS,
    IMAGE_FOLDER_ZIPS,
    REAL_BUCKET,
    REPEATED_ZERO_ROWS,
    SCALE_JSON_LINES,
    csv_row_counts,
    image_folder_counts,
    json_entries,
)
from sign_datasets.replica.generate import DEFAULT_SCALE, MANIFEST_NAME, make_replica
from sign_datasets.replica.server import ReplicaServer
from sign_datasets.replica.synthetic import sign_image, sign_images

__all__ = [
    "ALL_OBJECTS",
    "CIFAR100_LABELS",
    "DEFAULT_SCALE",
    "FIRST_ZERO_ROW",
    "FWEFEW_ROWS",
    "IMAGE_FOLDER_ZIPS",
    "MANIFEST_NAME",
    "REAL_BUCKET",
    "REPEATED_ZERO_ROWS",
    "SCALE_JSON_LINES",
    "ReplicaServer",
    "csv_row_counts",
    "image_folder_counts",
    "json_entries",
    "make_replica",
    "sign_image",
    "sign_images",
]
