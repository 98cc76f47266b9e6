with { a = 1; b = "two"; }; [ a b (let a = 3; in a) ]
