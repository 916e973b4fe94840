// NN.g4 — the syntax of .nn files, and nothing else.
//
// Names, attributes, shapes and every other rule of meaning live in the
// front end (compiler/frontend/Sema.cpp) and the op table (compiler/ops/),
// so that their errors can say more than a parser can. Keywords are few and
// contextual: `model`, `block`, `return`, `true` and `false` are reserved; words such
// as `data`, `loss` or `optimizer` are ordinary identifiers that the front end
// recognises by position.
grammar NN;

file : decl* EOF ;

decl
    : MODEL ident '(' paramList? ')' body                     # modelDecl
    | BLOCK ident '(' blockParams? ')' '(' blockInputs? ')' body  # blockDecl
    | ident ident? '{' item* '}'                              # configDecl
    | ident stage                                             # settingDecl
    ;

// ---- models -----------------------------------------------------------------

paramList : param (',' param)* ','? ;
param     : ident ':' shape ;
shape     : '[' (INT (',' INT)* ','?)? ']' ;

// `block residual(c, stride=1)(x) { … }`: constants, then tensor inputs.
blockParams : blockParam (',' blockParam)* ','? ;
blockParam  : ident ('=' expr)? ;
blockInputs : ident (',' ident)* ','? ;

body : '{' stmt* '}' ;

stmt
    : ident '=' expr ';'?                                     # assignStmt
    | RETURN expr ';'?                                        # returnStmt
    | expr ';'?                                               # exprStmt
    ;

// `x -> flatten -> fc1: dense(64) -> relu`: a value piped through layers.
expr  : operand ('->' stage)* ;
stage : (label=ident ':')? callee=ident ('(' argList? ')')? ;

operand
    : operand '@' operand                                     # matmulExpr
    | '-' operand                                             # negExpr
    | ident '(' argList? ')'                                  # callExpr
    | ident                                                   # nameExpr
    | literal                                                 # literalExpr
    | '[' (expr (',' expr)* ','?)? ']'                        # listExpr
    | '(' expr ')'                                            # parenExpr
    ;

argList : arg (',' arg)* ','? ;
arg     : (name=ident '=')? expr ;

// ---- configuration blocks: `data mnist { path "data/mnist", batch 64 }` ------

item
    : ident ( '(' argList? ')'
            | '{' item* '}'
            | itemValue
            )? (',' | ';')?
    ;
itemValue : literal | '-' (INT | FLOAT) | '[' (itemValue (',' itemValue)* ','?)? ']' ;

// ---- lexical ----------------------------------------------------------------

literal : INT | FLOAT | STRING | TRUE | FALSE ;
ident   : IDENT ;

MODEL  : 'model' ;
BLOCK  : 'block' ;
RETURN : 'return' ;
TRUE   : 'true' ;
FALSE  : 'false' ;

IDENT  : [a-zA-Z_] [a-zA-Z_0-9]* ;
FLOAT  : DIGITS '.' DIGITS? EXPONENT? | '.' DIGITS EXPONENT? | DIGITS EXPONENT ;
INT    : DIGITS ;
STRING : '"' (~["\\\r\n] | '\\' ~[\r\n])* '"' ;

fragment DIGITS   : [0-9]+ ;
fragment EXPONENT : [eE] [+-]? DIGITS ;

LINE_COMMENT  : ('#' | '//') ~[\r\n]* -> skip ;
BLOCK_COMMENT : '/*' .*? '*/' -> skip ;
WS            : [ \t\r\n\f]+ -> skip ;

// Lexical mistakes become tokens on a hidden channel, so that the front end
// can explain them (an unterminated string, a stray character) instead of the
// parser tripping over what is left.
SINGLE_QUOTED        : '\'' ~['\r\n]* '\'' -> channel(HIDDEN) ;
UNTERMINATED_STRING  : '"' (~["\\\r\n] | '\\' ~[\r\n])* -> channel(HIDDEN) ;
UNTERMINATED_COMMENT : '/*' (~'*' | '*'+ ~[*/])* '*'* EOF -> channel(HIDDEN) ;
BAD_CHAR             : . -> channel(HIDDEN) ;
