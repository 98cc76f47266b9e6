let x = 1; y = x + 2; in x * y
