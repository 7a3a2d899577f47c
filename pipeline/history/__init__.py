"""Run history: the metadata-store queries (store), one typed record of a run (record), built
from the store and the artifacts (build), rendered on the console (console, lineage, commands)
and as an HTML page (page_data, charts, html, html_blocks, html_evaluation), written by report.
"""
