"""Archive formats built from a job's page results: plain text (`text.py`), hOCR (`hocr.py`) and
a searchable PDF (`searchable_pdf.py`: the stored page images with an invisible text layer).

The assemble stage builds all three once per job and stores them next to result.json
(`store.py`); the API serves the stored bytes, and builds the cheap per-page txt and hOCR on
request. Nothing here invents geometry: a page whose engine gave no line boxes (`positioned`
false) gets its text without positions.
"""
