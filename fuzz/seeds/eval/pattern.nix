({ a, b ? 2, ... }@args: a + b + builtins.length (builtins.attrNames args)) { a = 1; c = 3; }
