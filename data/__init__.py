"""Sample data for the pipeline and the scripts that build or fetch it."""
