"""What the course bucket holds: its objects' names, their real counts (see
shared SOURCES.md) and the counts of a replica at a given scale."""

from __future__ import annotations

from sign_datasets.core.labels import SIGN_LETTERS


REAL_BUCKET = "https://storage.googleapis.com/platzi-tf2/"


DATABASES_ZIP = "databasesLoadData.zip"


IMG_MNIST = "img_mnist"


SIGN_IMG_ZIP = "sign-language-img.zip"


MALARIA_ZIP = "MalariaCells.zip"


TOM_JERRY_ZIP = "TomAndJerry.zip"


TUMOR_ZIP = "TumorClassification.zip"


CIFAR_LABELS = "cifar100_labels.json"


# "img_mnist" stands for every img_mnist/<n>_<L>.jpg object at once.
ALL_OBJECTS = (DATABASES_ZIP, IMG_MNIST, SIGN_IMG_ZIP, MALARIA_ZIP, TOM_JERRY_ZIP, TUMOR_ZIP, CIFAR_LABELS)


# The real data.json has 9 lines. The fetcher benchmark wants hundreds of URLs,
# so larger scales list more: max(9, round(SCALE_JSON_LINES * scale)) lines.
SCALE_JSON_LINES = 450


REAL_JSON_ENTRIES = (
    (29, "B"), (30, "B"), (95, "B"), (58, "A"), (50, "A"), (46, "A"), (3, "C"), (32, "C"), (2, "C"),
)


# Real counts (SOURCES.md); the replica scales them.
REAL_CSV_TRAIN_ROWS = 27455


REAL_CSV_TEST_ROWS = 7172


# The dirty rows sit at fixed indices, so the CSV never gets fewer rows than
# these minimums whatever the scale.
MIN_CSV_TRAIN_ROWS = 900


MIN_CSV_TEST_ROWS = 100


FIRST_ZERO_ROW = 49


REPEATED_ZERO_ROWS = (317, 487, 595, 689)


FWEFEW_ROWS = (727, 802, 861)


FWEFEW = "fwefew"


IMAGE_FOLDER_ZIPS = {
    SIGN_IMG_ZIP: {"classes": SIGN_LETTERS, "train": 27455, "test": 7172},
    MALARIA_ZIP: {"classes": ("Parasitized", "Uninfected"), "train": 27558, "test": 15832},
    TOM_JERRY_ZIP: {"classes": ("Tom", "Jerry"), "train": 301, "test": 42},
    TUMOR_ZIP: {"classes": ("BENIGN", "MALIGNANT", "NORMAL"), "train": 1050, "test": 144},
}


MIN_PER_CLASS = 2


SPLITS = ("Train", "Test")


CIFAR100_LABELS = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "computer_keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)
assert len(CIFAR100_LABELS) == 100


def csv_row_counts(scale: float) -> tuple[int, int]:
    """(train rows, test rows) of the sign MNIST CSVs at `scale`."""
    return (
        max(MIN_CSV_TRAIN_ROWS, round(REAL_CSV_TRAIN_ROWS * scale)),
        max(MIN_CSV_TEST_ROWS, round(REAL_CSV_TEST_ROWS * scale)),
    )


def json_entries(scale: float) -> list[tuple[int, str]]:
    """(n, LETTER) of every data.json line / img_mnist object at `scale`.

    The first 9 are the real file's; extra ones cycle over the 24 letters with
    numbers from 100 up, which the real names (all below 100) never use.
    """
    lines = max(len(REAL_JSON_ENTRIES), round(SCALE_JSON_LINES * scale))
    entries = list(REAL_JSON_ENTRIES[:lines])
    for i in range(lines - len(entries)):
        entries.append((100 + i // len(SIGN_LETTERS), SIGN_LETTERS[i % len(SIGN_LETTERS)]))
    return entries


def img_mnist_name(n: int, letter: str) -> str:
    return f"{IMG_MNIST}/{n}_{letter.upper()}.jpg"


def split_counts(total: int, n_classes: int, minimum: int = MIN_PER_CLASS) -> list[int]:
    """Spreads `total` over the classes as evenly as possible, the first classes
    taking the remainder, with at least `minimum` each."""
    total = max(total, minimum * n_classes)
    base, rem = divmod(total, n_classes)
    return [base + 1 if i < rem else base for i in range(n_classes)]


def image_folder_counts(object_name: str, scale: float) -> dict[str, dict[str, int]]:
    spec = IMAGE_FOLDER_ZIPS[object_name]
    out = {}
    for split in SPLITS:
        counts = split_counts(round(spec[split.lower()] * scale), len(spec["classes"]))
        out[split] = dict(zip(spec["classes"], counts))
    return out
