"""One module per problem: data -> model -> train -> evaluate -> use."""
