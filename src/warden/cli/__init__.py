"""The command-line front end: thin argparse layer over functions taking plain values."""
