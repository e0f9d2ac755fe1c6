"""View models: plain Python that turns the API's answers and a person's input into what a template
shows (labels, errors keyed by field, ordered lists). No Flask request, no HTTP: unit-testable."""
