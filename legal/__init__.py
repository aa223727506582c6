"""Impressum, Datenschutzerklärung and Erklärung zur Barrierefreiheit: settings, public pages, links."""
