"""Building blocks of the reports that ``python -m rlcausality.reporting.report`` writes.

A report is built as a list of blocks (headings, paragraphs, tables, images) rendered twice: to
self-contained HTML (inline CSS, every image embedded as a base64 PNG) and to Markdown (images
linked relative to the Markdown file, from the plots directory). Every number comes with where
it came from: the provenance table names model, stage, test set, data hash and settings hashes.

- ``cells``: the model/stage/test-set key, its order, and loading metrics, baselines and
  predictions files
- ``render``: the block model and its HTML and Markdown renderers
- ``tables``: tables of metrics (with their intervals), breakdowns, settings and provenance
- ``paired``: paired comparisons of stages and the best baseline on identical items
- ``plots``: matplotlib figures as PNG bytes
- ``documents``: the blocks of the per-stage and summary reports
"""
