"""Malaria cell crops from the course's MalariaCells.zip."""

from sign_datasets.catalog.generated import project_folder_builder


# Version, release notes, configs, archive, classes and mode: sign_datasets/catalog/catalog.toml.
class Builder(project_folder_builder("malaria_cells")):
    """Thin-blood-smear cell crops, parasitized or uninfected, in RGB."""
