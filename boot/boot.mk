# boot/boot.mk: the boot proof (docs/boot.md). Included by the top-level Makefile.
# All targets need root (mmdebstrap, mkfs, dracut) and build the release binary first.
#   make boot-test                    every scenario; PASS/FAIL per check, "N passed, M failed"
#   make boot-test BOOT_SCENARIOS=basic
#   make demo                         boot a demo VM and show earlyext's work from inside it
#   make boot-images                  only build (or find cached) kernel, root, /usr, initrd, images
#   make boot-configs                 after changing boot/extensions/ or a config.bu: new hashes, new .ign
.PHONY: boot-test boot-images boot-configs demo

BOOT_SCENARIOS ?=

boot-images: release
	@bash boot/install-deps.sh
	@bash boot/images.sh

boot-test: release
	@bash boot/boot-test.sh $(BOOT_SCENARIOS)

demo: release
	@bash boot/demo.sh

boot-configs:
	@bash boot/configs.sh --hashes
