#!/usr/bin/env python3
"""A calculator: each message an arithmetic expression, each answer its value.

    netlab serve exec -- python3 examples/plugins/calc.py

Expressions are parsed, never eval'd: numbers, + - * / // % **, unary minus and
parentheses, nothing else; exponents and results are bounded, so no message can make
the program compute for long. A bad expression gets a reason, and the next one is
answered as usual.
"""

import ast
import operator
import sys

OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
MAX_EXPONENT = 1000
MAX_DIGITS = 1000


def value(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = value(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        left, right = value(node.left), value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponents are limited to {MAX_EXPONENT}")
        result = OPERATORS[type(node.op)](left, right)
        if isinstance(result, int) and result.bit_length() > MAX_DIGITS * 4:
            raise ValueError("the result is too large")
        return result
    raise ValueError("only numbers, + - * / // % ** and parentheses")


def answer(text):
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return f"= {value(tree.body)}"
    except ZeroDivisionError:
        return "error: division by zero"
    except (SyntaxError, ValueError, OverflowError, TypeError) as e:
        reason = e.msg if isinstance(e, SyntaxError) else str(e)
        return f"error: {reason}"


print("calculator: type an expression, such as (2 + 3) * 4", flush=True)
for line in sys.stdin:
    print(answer(line.rstrip("\n")).replace("\\", "\\\\").replace("\n", "\\n"), flush=True)
