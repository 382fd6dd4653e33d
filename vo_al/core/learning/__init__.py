"""The method's machine learning, on arrays: no projects, no files other than models and scores.

- `classes`: the three classes and which are targets
- `model`: the 1-D CNN (Keras 3, imported lazily), training as a job, the device in use
- `balance`: SMOTE over-sampling
- `scoring`: the whole pool scored chunk by chunk into a probabilities file
- `strategies`: query strategies (entropy, margin, …) as plain functions, and their registry
- `precision`: the precision estimate of a random sample of predicted targets
"""
