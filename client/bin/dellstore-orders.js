#!/usr/bin/env node
// The bin npm links: committed, so a fresh `npm install` links it before the build has made dist/.
import "../dist/cli.js";
