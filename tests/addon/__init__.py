"""Tests of the Blender add-on; the ones that need Blender run bpy in a subprocess, never in pytest itself."""
