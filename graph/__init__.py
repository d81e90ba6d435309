"""Graph builders and routing. Import `gome.graph.builder` for the compiled graphs."""
