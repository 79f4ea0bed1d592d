#ifndef EARLYEXT_CKMOD_H
#define EARLYEXT_CKMOD_H
#include <libkmod.h>
#endif
