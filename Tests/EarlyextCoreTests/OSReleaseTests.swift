import Testing
@testable import EarlyextCore

/// One os-release parsing case: the text, the fields it must give, and the lines it must reject.
struct OSReleaseCase: Sendable, CustomTestStringConvertible {
    var name: String
    var text: String
    var fields: [String: String]
    var problemLines: [Int] = []

    var testDescription: String { name }
}

private let osReleaseCases: [OSReleaseCase] = [
    .init(name: "plain", text: "ID=fedora\n", fields: ["ID": "fedora"]),
    .init(name: "no final newline", text: "ID=fedora", fields: ["ID": "fedora"]),
    .init(name: "empty file", text: "", fields: [:]),
    .init(name: "comments and blanks", text: "# c\n  ; d\n\n\t# e\nID=x\n", fields: ["ID": "x"]),
    .init(name: "double quoted", text: "NAME=\"Fedora Linux\"\n", fields: ["NAME": "Fedora Linux"]),
    .init(name: "single quoted", text: "NAME='Fedora Linux'\n", fields: ["NAME": "Fedora Linux"]),
    .init(name: "whitespace around key and value", text: "  ID  =   debian   \n", fields: ["ID": "debian"]),
    .init(name: "inner whitespace kept", text: "NAME=Debian GNU/Linux\n", fields: ["NAME": "Debian GNU/Linux"]),
    .init(name: "escapes in double quotes", text: #"A="a\"b\\c\$d\`e""# + "\n", fields: ["A": "a\"b\\c$d`e"]),
    .init(name: "other escapes in double quotes keep the backslash", text: #"A="x\ny""#, fields: ["A": #"x\ny"#]),
    .init(name: "no escapes in single quotes", text: #"A='x\"y'"#, fields: ["A": #"x\"y"#]),
    .init(name: "double quote inside single quotes", text: #"A='say "hi"'"#, fields: ["A": #"say "hi""#]),
    .init(name: "mixed quoting", text: #"A="x"'y'z"#, fields: ["A": "xyz"]),
    .init(name: "quotes inside an unquoted value are literal", text: #"A=x"y""#, fields: ["A": #"x"y""#]),
    .init(name: "unquoted backslash escapes", text: "A=a\\ b\\\\c\\#d", fields: ["A": #"a b\c#d"#]),
    .init(name: "escaped trailing space survives", text: "A=ab\\ \n", fields: ["A": "ab "]),
    .init(name: "trailing whitespace trimmed", text: "A=ab \t \n", fields: ["A": "ab"]),
    .init(name: "whitespace inside quotes kept", text: "A=\"  ab  \"  \n", fields: ["A": "  ab  "]),
    .init(name: "continuation unquoted", text: "A=foo\\\nbar\nB=1\n", fields: ["A": "foobar", "B": "1"]),
    .init(name: "continuation in double quotes", text: "A=\"foo\\\nbar\"\n", fields: ["A": "foobar"]),
    .init(name: "newline inside quotes kept", text: "A='two\nlines'\nB=2\n", fields: ["A": "two\nlines", "B": "2"]),
    .init(name: "empty value", text: "A=\nB=\"\"\nC=''\n", fields: ["A": "", "B": "", "C": ""]),
    .init(name: "later assignment wins", text: "ID=a\nID=b\n", fields: ["ID": "b"]),
    .init(name: "equals sign in value", text: "A=b=c\n", fields: ["A": "b=c"]),
    .init(name: "hash in value is not a comment", text: "A=b # c\n", fields: ["A": "b # c"]),
    .init(name: "comment does not continue", text: "# x \\\nID=y\n", fields: ["ID": "y"]),
    .init(name: "CRLF line ends", text: "ID=a\r\nVERSION_ID=1\r\n", fields: ["ID": "a", "VERSION_ID": "1"]),
    .init(name: "UTF-8 value", text: "PRETTY_NAME=\"Ubuntu 24.04 “Noble” ☃\"", fields: ["PRETTY_NAME": "Ubuntu 24.04 “Noble” ☃"]),
    .init(name: "underscore key", text: "_X1=y\n", fields: ["_X1": "y"]),
    .init(name: "whitespace after closing quote skipped", text: "A=\"x\"   \n", fields: ["A": "x"]),
    // Bad lines: skipped and reported, never fatal.
    .init(name: "missing equals", text: "ID=a\njunk line\nB=c\n", fields: ["ID": "a", "B": "c"], problemLines: [2]),
    .init(name: "missing equals at end", text: "ID=a\njunk", fields: ["ID": "a"], problemLines: [2]),
    .init(name: "key starts with digit", text: "1A=b\nC=d\n", fields: ["C": "d"], problemLines: [1]),
    .init(name: "key with dash", text: "A-B=c\n", fields: [:], problemLines: [1]),
    .init(name: "key with inner space", text: "A B=c\n", fields: [:], problemLines: [1]),
    .init(name: "empty key", text: "=value\nA=b\n", fields: ["A": "b"], problemLines: [1]),
    .init(name: "export prefix is not shell", text: "export A=b\n", fields: [:], problemLines: [1]),
    .init(name: "unterminated double quote", text: "ID=x\nNAME=\"Fedora\nVERSION_ID=40\n",
          fields: ["ID": "x", "VERSION_ID": "40"], problemLines: [2]),
    .init(name: "unterminated single quote on the last line", text: "ID=x\nNAME='Fedora", fields: ["ID": "x"],
          problemLines: [2]),
    .init(name: "unterminated quote after escape", text: "A=\"x\\\"\nB=1\n", fields: ["B": "1"], problemLines: [1]),
    .init(name: "several bad lines", text: "a b\nID=1\n9=x\n\nVERSION=2\n-=\n",
          fields: ["ID": "1", "VERSION": "2"], problemLines: [1, 3, 6]),
]

@Suite("OSRelease")
struct OSReleaseTests {
    @Test(arguments: osReleaseCases)
    func parse(_ testCase: OSReleaseCase) {
        let release = OSRelease.parse(testCase.text)
        #expect(release.fields == testCase.fields)
        #expect(release.problems.map(\.line) == testCase.problemLines, "\(release.problems)")
    }

    @Test func realFile() {
        let text = """
            PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
            NAME="Debian GNU/Linux"
            VERSION_ID="12"
            VERSION="12 (bookworm)"
            VERSION_CODENAME=bookworm
            ID=debian
            HOME_URL="https://www.debian.org/"
            """
        let release = OSRelease.parse(text)
        #expect(release.problems.isEmpty)
        #expect(release["ID"] == "debian")
        #expect(release["VERSION_ID"] == "12")
        #expect(release["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)")
        #expect(release["ID_LIKE"] == nil)
    }

    @Test func problemMessagesNameTheCause() {
        let problems = OSRelease.parse("junk\n1X=y\nA=\"open\n").problems
        #expect(problems == [
            ParseProblem(line: 1, message: "missing '=' after 'junk'"),
            ParseProblem(line: 2, message: "invalid key '1X'"),
            ParseProblem(line: 3, message: "unterminated double quote in the value of 'A'"),
        ])
        #expect(problems[0].description == "line 1: missing '=' after 'junk'")
    }
}
