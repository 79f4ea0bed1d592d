#ifndef EARLYEXT_CMOUNT_H
#define EARLYEXT_CMOUNT_H
#include <libmount.h>
#include <blkid.h>
#endif
