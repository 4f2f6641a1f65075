#include <iostream>
#include <string>
#include <vector>

#include "ijazat/provisioning/cli.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  return ijazat::provisioning::RunProvision(args, std::cout, std::cerr);
}
