"""Stage runners: each loads what earlier stages saved in an asset, runs its pure stage, and saves and records
the result (generate, postprocess, rig, bake, export; text and scene chain them)."""
