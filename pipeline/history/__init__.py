"""Run history: the metadata-store queries (store), one typed record of a run (record), built
from the store and the artifacts (build), rendered on the console (console, lineage) and as
an HTML page (pipeline.report)."""
