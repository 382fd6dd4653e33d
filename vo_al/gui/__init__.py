"""The desktop application (PyQt6 + pyqtgraph). Only widgets and glue live here; the logic is in
`vo_al.core`, which never imports Qt."""
