# Sphinx configuration for the release notes (reno).
# reno finds the notes through git, so build from inside the repository:
#   sphinx-build -W -b html releasenotes/source releasenotes/build/html

project = 'ironic-fa-driver release notes'
copyright = 'ironic-fa-driver developers'
author = 'ironic-fa-driver developers'

extensions = ['reno.sphinxext']
master_doc = 'index'
exclude_patterns = ['_build']

pygments_style = 'sphinx'
html_theme = 'alabaster'
