# Reads ctest's Testing/Temporary/LastTest.log after the asan pass of .ci/run and prints each
# failed test as "LEAK <name>" when its output holds a LeakSanitizer report (of the test or of a
# program it ran) and no ASan or UBSan error, else as "OTHER <name>".
/^[0-9]+\/[0-9]+ Testing: / { name = $3; leak[name] = 0; other[name] = 0; next }
/ERROR: LeakSanitizer/ { leak[name] = 1 }
/ERROR: AddressSanitizer|runtime error:/ { other[name] = 1 }
/^Test Failed\./ { failed[name] = 1 }
END {
  for (n in failed) print ((leak[n] && !other[n]) ? "LEAK " : "OTHER ") n
}
