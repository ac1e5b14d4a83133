"""Package marker so setuptools ships the bundled history files (package-data *.csv.gz, *.md)."""
