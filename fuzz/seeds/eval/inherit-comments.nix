# comment
/* block */ let inherit (builtins) head tail; xs = [ 1 2 3 ]; in { inherit xs; h = head xs; t = tail xs; }
