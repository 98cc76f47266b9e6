let name = "world"; n = 3; in "hello ${name}, ${toString n} times: ${builtins.concatStringsSep "," [ "a" "b" ]}"
