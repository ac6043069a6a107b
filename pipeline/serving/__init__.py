"""A trained classifier in use: the Python API, the scikit-learn transformer, the HTTP service."""
