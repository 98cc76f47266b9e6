{ x = builtins.hashString "sha256" "abc"; y = builtins.toString [ 1 2 ]; z = builtins.listToAttrs [ { name = "k"; value = builtins.mapAttrs (n: v: v + 1) { a = 1; }; } ]; p = ./foo + "/bar"; }
