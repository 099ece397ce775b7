"""Training recipes: standalone scripts that the local worker runs in a subprocess and that
SageMaker runs as a training entry point. They import nothing from the portal."""
