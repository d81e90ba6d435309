"""One module per graph node; each node is a function (state, runtime) -> update."""
