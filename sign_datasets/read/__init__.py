"""Reading built datasets: the training pipeline and pictures of examples."""
