"""The class names every sign-language dataset of the project shares.

The CSVs number the letters 0..24 and skip 9 (J) and 25 (Z), which need motion;
keras' flow_from_directory numbers the 24 folders 0..23. We store the 0..23
numbering everywhere, so one model serves every sign-language dataset.
"""

SIGN_LETTERS = tuple("ABCDEFGHIKLMNOPQRSTUVWXY")
assert len(SIGN_LETTERS) == 24

# CSV label value -> our class index. 9 (J) and 25 (Z) have no entry: they are
# "unknown label" drops.
CSV_LABEL_TO_INDEX = {
    csv_label: SIGN_LETTERS.index(chr(ord("A") + csv_label))
    for csv_label in range(26)
    if chr(ord("A") + csv_label) in SIGN_LETTERS
}
INDEX_TO_CSV_LABEL = {index: csv_label for csv_label, index in CSV_LABEL_TO_INDEX.items()}


def letter_to_index(letter: str) -> int:
    """Maps 'b' or 'B' to its class index; raises KeyError for J, Z or anything else."""
    letter = letter.strip().upper()
    if len(letter) != 1 or letter not in SIGN_LETTERS:
        raise KeyError(letter)
    return SIGN_LETTERS.index(letter)
