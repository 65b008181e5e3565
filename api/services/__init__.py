"""Domain services: the rules of the registry, called by api/routes/ and, for a few, by worker/.

Each module owns one kind of decision; none speaks HTTP (they raise `ApiError`, which the app
turns into a response). Authorization lives in `access` alone.
"""
