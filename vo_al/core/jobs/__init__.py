"""The work the app and the command line both run, each as one job over a project.

- `process`: a job in a child process (training, scoring, finishing: TensorFlow never runs in
  the app's own process), with progress, cancel and typed errors back
- `dashboard`: the dashboard's data from one pass over the session (estimates, class counts,
  entropy histogram, candidates)
- `crossmatch`: the cross-match of a project's candidates as one job (the Cross-match tab)
"""
