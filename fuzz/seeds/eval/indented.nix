''
  indented ${"str"}
  ''${not} ''' tab\t
''
