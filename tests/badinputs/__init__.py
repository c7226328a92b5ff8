"""The bad-input corpus: generated sources that every reader must survive.

make_corpus.py writes the cases and holds the expected outcome of each;
run_case.py builds one case through the real TFDS builder; report.py writes
docs/RELIABILITY.md from a run of all of them.
"""
