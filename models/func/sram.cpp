#include "func/sram.h"
