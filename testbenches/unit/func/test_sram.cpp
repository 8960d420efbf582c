#include <gtest/gtest.h>

#include "func/sram.h"
