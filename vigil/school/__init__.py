"""The school, departments, areas, recorders and cameras."""
