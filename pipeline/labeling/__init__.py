"""The labeling page (make label): an extra on top of the core, with FastAPI and uvicorn."""
