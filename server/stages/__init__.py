"""Pure stages: functions over meshes, images and arrays; no Gradio, no bpy."""
