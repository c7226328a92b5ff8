"""The bad-input corpus: generated sources that every reader must survive.

make_corpus.py writes the cases, one module per format (csv_cases.py, ...,
trust_cases.py), each holding the expected outcome of its cases; run_case.py
builds one case through the real TFDS builder; report.py writes
docs/RELIABILITY.md from a run of all of them.
"""
