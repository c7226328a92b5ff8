"""Fresh processes for tests/test_determinism.py.

    python tests/determinism_worker.py plain DATA_DIR [--ours NAME --ours-dir DIR]
        Builds PlainMany, a TFDS dataset that is not ours, into DATA_DIR. With
        --ours, first imports sign_datasets and builds NAME into DIR (source:
        SIGN_DATASETS_SOURCE), so that the plain build runs after ours.
    python tests/determinism_worker.py serialize OUT_DIR
        Serializes one example of sign_mnist_csv and one of PlainMany's, as
        TFDS does and as our builders write them; prints the bytes as JSON.
"""

# First, whatever the mode: protobuf then loads at the same place in every
# process started the same way, which fixes its map order under `setarch -R`.
import tensorflow_datasets as tfds  # noqa: I001

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

# Twelve keys: the chance that an unsorted serializer writes them sorted by luck is negligible.
MANY_KEYS = ("zeta", "label", "image", "alpha", "mid", "beta", "omega", "kappa",
             "delta", "gamma", "theta", "sigma")


class PlainMany(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A plain TFDS dataset with a FeaturesDict of several kinds of features."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = {key: tfds.features.Tensor(shape=(), dtype=np.int64) for key in MANY_KEYS}
        features.update(image=tfds.features.Tensor(shape=(4, 4, 1), dtype=np.uint8,
                                                   encoding="bytes"),
                        label=tfds.features.ClassLabel(names=["a", "b", "c"]),
                        gamma=tfds.features.Text(),
                        sigma=tfds.features.Tensor(shape=(2,), dtype=np.float32))
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(30)}

    def _generate_examples(self, count):
        for index in range(count):
            yield index, example(index)


def example(index: int) -> dict:
    values = {key: index * 7 + position for position, key in enumerate(MANY_KEYS)}
    values.update(image=np.full((4, 4, 1), index, np.uint8), label=index % 3,
                  gamma=f"text {index}", sigma=np.array([index, -index], np.float32))
    return values


def build_plain(data_dir: str, ours: str | None, ours_dir: str | None) -> None:
    if ours:
        import sign_datasets  # noqa: F401  (registers the builders)

        tfds.builder(ours, data_dir=ours_dir).download_and_prepare()
    PlainMany(data_dir=data_dir).download_and_prepare()


def tfrecord_payloads(path: Path) -> list[bytes]:
    """The records of a TFRecord file: length (8 bytes), its CRC (4), data, data CRC (4)."""
    raw, records, at = path.read_bytes(), [], 0
    while at < len(raw):
        length = int.from_bytes(raw[at:at + 8], "little")
        records.append(raw[at + 12:at + 12 + length])
        at += 12 + length + 4
    return records


def serialize(out_dir: str) -> None:
    """TFDS's own serialization of an example, and the bytes our builders' writer stores."""
    import sign_datasets  # noqa: F401  (registers the builders)
    from tensorflow_datasets.core import example_serializer

    ours = tfds.builder("sign_mnist_csv/dirty", data_dir=out_dir)
    examples = {
        "sign": (ours.info.features, {"image": np.zeros((28, 28, 1), np.uint8), "label": "C"}),
        "many": (PlainMany(data_dir=out_dir).info.features, example(3)),
    }
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    result = {}
    for name, (features, values) in examples.items():
        serializer = example_serializer.ExampleSerializer(features.get_serialized_info())
        plain = serializer.serialize_example(features.encode_example(values))
        path = Path(out_dir) / f"{name}.tfrecord"
        ours._example_writer().write(path, [(0, plain)])
        [written] = tfrecord_payloads(path)
        result[name] = {"plain": plain.hex(), "ours": written.hex()}
    print(json.dumps(result))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("plain", "serialize"))
    parser.add_argument("folder")
    parser.add_argument("--ours")
    parser.add_argument("--ours-dir")
    args = parser.parse_args(argv)
    tfds.disable_progress_bar()
    if args.mode == "plain":
        build_plain(args.folder, args.ours, args.ours_dir)
    else:
        serialize(args.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
