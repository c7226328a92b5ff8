"""Tom and Jerry cartoon frames from the course's TomAndJerry.zip."""

from sign_datasets.catalog.generated import project_folder_builder


# Version, release notes, configs, archive, classes and mode: sign_datasets/catalog/catalog.toml.
class Builder(project_folder_builder("tom_and_jerry")):
    """Cartoon frames showing Tom or Jerry, in RGB."""
