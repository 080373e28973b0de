"""Open3DForge Blender add-on (registration arrives with the add-on itself; client.py works without bpy)."""
