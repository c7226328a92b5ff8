"""Lung CT slices from the course's TumorClassification.zip."""

from sign_datasets.catalog.generated import project_folder_builder


# Version, release notes, configs, archive, classes and mode: sign_datasets/catalog/catalog.toml.
class Builder(project_folder_builder("tumor_classification")):
    """Lung CT slices: benign, malignant or normal, in grayscale."""
