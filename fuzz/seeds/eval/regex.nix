[ (builtins.match "a(b*)c" "abbbc") (builtins.split "[,;]" "x,y;z") (builtins.replaceStrings [ "o" ] [ "0" ] "foo") (builtins.substring 1 3 "abcdef") ]
