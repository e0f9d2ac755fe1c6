"""A command-line client of the Linli platform: loads a demo city and tells the article's story."""
